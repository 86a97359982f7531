# The miniworld's learned models (docs/miniworld.md): `snakemake miniworld_models --configfile workflow/miniworld.yaml`.
# One job per stage of `segmentdreamer miniworld` (segmentdreamer/miniworld/build.py), each resuming its checkpoint;
# the models land in `miniworld_weights` (shipped in the repository), renders and checkpoints in the work folder.


rule miniworld_models:
    """The miniworld's mini-SD, mini-CLIP and mini Point-E, trained, gated (gates.json) and written to miniworld_weights."""
    input:
        miniworld_file(MINIWORLD_OUT, "gates"),


rule miniworld_renders:
    output:
        temp(L.miniworld_work("renders")),
    log:
        L.job_log("miniworld", stage="renders"),
    benchmark:
        L.job_benchmark("miniworld", stage="renders")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        **MINIWORLD_PARAMS,
    shell:
        miniworld_shell("renders")


rule miniworld_clip:
    input:
        L.miniworld_work("renders"),
    output:
        directory(miniworld_file(MINIWORLD_OUT, "clip")),
    log:
        L.job_log("miniworld", stage="clip"),
    benchmark:
        L.job_benchmark("miniworld", stage="clip")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        **MINIWORLD_PARAMS,
    shell:
        miniworld_shell("clip")


rule miniworld_vae:
    input:
        L.miniworld_work("renders"),
    output:
        temp(directory(L.miniworld_work("vae"))),
    log:
        L.job_log("miniworld", stage="vae"),
    benchmark:
        L.job_benchmark("miniworld", stage="vae")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        **MINIWORLD_PARAMS,
    shell:
        miniworld_shell("vae")


rule miniworld_unet:
    input:
        L.miniworld_work("renders"),
        L.miniworld_work("vae"),
        miniworld_file(MINIWORLD_OUT, "clip"),
    output:
        directory(miniworld_file(MINIWORLD_OUT, "sd")),
    log:
        L.job_log("miniworld", stage="unet"),
    benchmark:
        L.job_benchmark("miniworld", stage="unet")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        **MINIWORLD_PARAMS,
    shell:
        miniworld_shell("unet")


rule miniworld_pointe:
    input:
        miniworld_file(MINIWORLD_OUT, "clip"),
    output:
        directory(miniworld_file(MINIWORLD_OUT, "pointe")),
    log:
        L.job_log("miniworld", stage="pointe"),
    benchmark:
        L.job_benchmark("miniworld", stage="pointe")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        **MINIWORLD_PARAMS,
    shell:
        miniworld_shell("pointe")


rule miniworld_gates:
    input:
        L.miniworld_work("renders"),
        miniworld_file(MINIWORLD_OUT, "sd"),
        miniworld_file(MINIWORLD_OUT, "clip"),
        miniworld_file(MINIWORLD_OUT, "pointe"),
    output:
        gates=miniworld_file(MINIWORLD_OUT, "gates"),
        manifest=miniworld_file(MINIWORLD_OUT, "manifest"),
        curves=report(
            miniworld_file(MINIWORLD_OUT, "loss_curves"),
            category="Miniworld models",
            subcategory="Training",
        ),
        samples=report(
            miniworld_file(MINIWORLD_OUT, "sd_samples"),
            category="Miniworld models",
            subcategory="Samples",
        ),
        points=report(
            miniworld_file(MINIWORLD_OUT, "pointe_samples"),
            category="Miniworld models",
            subcategory="Samples",
        ),
    log:
        L.job_log("miniworld", stage="gates"),
    benchmark:
        L.job_benchmark("miniworld", stage="gates")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        **MINIWORLD_PARAMS,
    shell:
        miniworld_shell("gates")
