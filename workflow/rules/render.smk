# The evaluation ring (white background) and a turntable video per run.


rule render:
    input:
        ply="<run>/gaussians.ply",
        setup=gpu_inputs(),
    output:
        views=directory("<run>/views"),
        video=report(
            "<run>/turntable.mp4",
            caption="../report/turntable.rst",
            category="Turntables",
            subcategory="{prompt_set} / {variant}",
            labels={"prompt": "{prompt_id}", "seed": "{seed}"},
        ),
    log:
        "<run>/logs/render.log",
    benchmark:
        "<run>/logs/render.benchmark.tsv"
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        views=config["eval"]["views"],
        resolution=config["eval"]["resolution"],
        elevation=config["eval"]["elevation"],
        device=config["device"],
        extensions=extensions_dir,
    shell:
        "OMP_NUM_THREADS={threads} TORCH_EXTENSIONS_DIR={params.extensions:q} segmentdreamer render --ply {input.ply:q}"
        " --out {output.views:q} --video {output.video:q} --views {params.views}"
        " --resolution {params.resolution} --elevation {params.elevation} --device {params.device}"
        " > {log:q} 2>&1"
