# One-off preparation: tiny models for offline runs, gsplat's CUDA extension before parallel GPU jobs.


rule tiny_models:
    """(internal) tiny random-weight models for tiny_models: true; the smoke config builds them."""
    output:
        marker=L.tiny_model("marker"),
    log:
        L.job_log("tiny_models"),
    benchmark:
        L.job_benchmark("tiny_models")
    conda:
        "../../environment.yml"
    params:
        folder=folder_of("marker"),
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer make-tiny-models {params.folder:q} > {log:q} 2>&1 && echo done > {output:q}"


rule build_extensions:
    """(internal) compile gsplat's CUDA extension once before the GPU jobs."""
    output:
        L.extensions_marker(),
    log:
        L.job_log("build_extensions"),
    benchmark:
        L.job_benchmark("build_extensions")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        folder=lambda wildcards: EXTENSIONS_DIR,
    shell:
        "OMP_NUM_THREADS={threads} TORCH_EXTENSIONS_DIR={params.folder:q} segmentdreamer build-extensions --out {output:q} > {log:q} 2>&1"
