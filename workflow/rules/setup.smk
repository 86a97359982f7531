# One-off preparation: tiny models for offline runs, gsplat's CUDA extension before parallel GPU jobs.


rule tiny_models:
    output:
        f"{R}/tiny_models/done.txt",
    log:
        f"{LOGS}/tiny_models.log",
    benchmark:
        f"{BENCH}/tiny_models.tsv"
    params:
        folder=f"{R}/tiny_models",
    shell:
        "segmentdreamer make-tiny-models {params.folder:q} > {log:q} 2>&1 && echo done > {output:q}"


rule build_extensions:
    output:
        GPU_MARKER,
    log:
        f"{LOGS}/build_extensions.log",
    benchmark:
        f"{BENCH}/build_extensions.tsv"
    params:
        folder=config["torch_extensions_dir"],
    resources:
        gpu=1,
    shell:
        "TORCH_EXTENSIONS_DIR={params.folder:q} segmentdreamer build-extensions --out {output:q} > {log:q} 2>&1"
