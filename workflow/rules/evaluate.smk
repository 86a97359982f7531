# Per-run scores of every registered metric (CLIP-L, ImageReward, a plugin's: segmentdreamer/evaluate/metric.py),
# one rule for all of them; per-method FID against a Stable Diffusion reference set generated from the same prompts.


rule evaluate_run:
    input:
        views=L.run_file("views"),
        ply=L.run_file("ply"),
        prompts=prompt_file,
        models=model_inputs(),
    output:
        L.metric_file(),
    log:
        L.run_log("evaluate_{metric}"),
    benchmark:
        L.run_benchmark("evaluate_{metric}")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        metric_args=lambda wildcards: shlex.join(EXP.metric_arguments(wildcards.metric)),
        device=config["device"],
        gpu_env=GPU_ENV,
    shell:
        "OMP_NUM_THREADS={threads} {params.gpu_env} segmentdreamer evaluate --metric {wildcards.metric} --views {input.views:q}"
        " --ply {input.ply:q} --prompts {input.prompts:q} --prompt-id {wildcards.prompt_id:q} {params.metric_args}"
        " --device {params.device} --out {output:q} > {log:q} 2>&1"


rule reference_images:
    input:
        prompts=prompt_file,
        models=model_inputs(),
    output:
        summary=L.reference_summary(),
    log:
        L.job_log("reference"),
    benchmark:
        L.job_benchmark("reference")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        folder=lambda wildcards: EXP.layout.reference_images(wildcards.prompt_set),
        sd=model("sd"),
        images=EXP.evaluation.fid.reference_images,
        batch=EXP.evaluation.fid.batch,
        steps=EXP.evaluation.fid.steps,
        resolution=EXP.evaluation.fid.resolution,
        seed=EXP.evaluation.fid.seed,
        compile="--compile" if EXP.evaluation.fid.compile else "",
        device=config["device"],
        gpu_env=GPU_ENV,
    shell:
        # Images go to a folder that is not a declared output, so a killed job resumes where it stopped.
        "OMP_NUM_THREADS={threads} {params.gpu_env} segmentdreamer ref-images --prompts {input.prompts:q} --count {params.images} --out {params.folder:q}"
        " --sd {params.sd:q} --batch {params.batch} --steps {params.steps} --resolution {params.resolution}"
        " --seed {params.seed} {params.compile} --device {params.device} --summary {output.summary:q} > {log:q} 2>&1"


rule fid:
    input:
        views=method_views,
        reference=L.reference_summary(),
        models=model_inputs(),
    output:
        L.fid(),
    log:
        L.job_log("fid"),
    benchmark:
        L.job_benchmark("fid")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        reference=lambda wildcards: EXP.layout.reference_images(wildcards.prompt_set),
        features=EXP.evaluation.fid.features,
        inception=model("inception"),
        cache=EXP.layout.cache("fid"),  # params get no path variables
        device=config["device"],
        gpu_env=GPU_ENV,
    shell:
        "OMP_NUM_THREADS={threads} {params.gpu_env} segmentdreamer fid --reference {params.reference:q} --generated {input.views:q}"
        " --features {params.features} --inception={params.inception:q} --cache {params.cache:q}"
        " --device {params.device} --out {output:q} > {log:q} 2>&1"


# The same FID over one seed's runs, for Table 1's mean +- std over seeds (config seeds with 2+ entries).
use rule fid as fid_seed with:
    input:
        views=seed_views,
        reference=L.reference_summary(),
        models=model_inputs(),
    output:
        L.fid_seed(),
    log:
        L.job_log("fid_seed"),
    benchmark:
        L.job_benchmark("fid_seed")
