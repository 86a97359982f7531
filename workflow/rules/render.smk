# The evaluation ring (white background) and a turntable video per run.


rule render:
    input:
        ply=RUN + "/gaussians.ply",
        setup=gpu_inputs(),
    output:
        views=directory(RUN + "/views"),
        video=report(
            RUN + "/turntable.mp4",
            caption="../report/turntable.rst",
            category="Turntables",
            subcategory="{prompt_set} / {variant}",
            labels={"prompt": "{prompt_id}", "seed": "{seed}"},
        ),
    log:
        RUN + "/logs/render.log",
    benchmark:
        RUN + "/logs/render.benchmark.tsv"
    params:
        views=config["eval"]["views"],
        resolution=config["eval"]["resolution"],
        elevation=config["eval"]["elevation"],
        device=config["device"],
        extensions=config["torch_extensions_dir"],
    resources:
        gpu=1,
    shell:
        "TORCH_EXTENSIONS_DIR={params.extensions:q} segmentdreamer render --ply {input.ply:q}"
        " --out {output.views:q} --video {output.video:q} --views {params.views}"
        " --resolution {params.resolution} --elevation {params.elevation} --device {params.device}"
        " > {log:q} 2>&1"
