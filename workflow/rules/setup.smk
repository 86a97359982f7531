# One-off preparation: tiny models for offline runs, gsplat's CUDA extension before parallel GPU jobs.


rule tiny_models:
    output:
        marker="<results>/tiny_models/done.txt",
    log:
        "<logs>/tiny_models.log",
    benchmark:
        "<benchmarks>/tiny_models.tsv"
    conda:
        "../../environment.yml"
    params:
        folder=folder_of("marker"),
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer make-tiny-models {params.folder:q} > {log:q} 2>&1 && echo done > {output:q}"


rule build_extensions:
    output:
        "<results>/torch_extensions/built.txt",
    log:
        "<logs>/build_extensions.log",
    benchmark:
        "<benchmarks>/build_extensions.tsv"
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        folder=extensions_dir,
    shell:
        "OMP_NUM_THREADS={threads} TORCH_EXTENSIONS_DIR={params.folder:q} segmentdreamer build-extensions --out {output:q} > {log:q} 2>&1"
