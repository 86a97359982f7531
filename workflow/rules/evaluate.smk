# Per-run CLIP-L and ImageReward over the ring's views; per-method FID against a Stable Diffusion
# reference set generated from the same prompts.


rule eval_clip:
    input:
        views=L.run_file("views"),
        prompts=prompt_file,
        models=model_inputs(),
    output:
        L.run_file("clip"),
    log:
        L.run_log("eval_clip"),
    benchmark:
        L.run_benchmark("eval_clip")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        clip=model("clip"),
        device=config["device"],
        gpu_env=GPU_ENV,
    shell:
        "OMP_NUM_THREADS={threads} {params.gpu_env} segmentdreamer eval-clip --views {input.views:q} --prompts {input.prompts:q}"
        " --prompt-id {wildcards.prompt_id:q} --clip {params.clip:q} --device {params.device}"
        " --out {output:q} > {log:q} 2>&1"


rule eval_image_reward:
    input:
        views=L.run_file("views"),
        prompts=prompt_file,
        models=model_inputs(),
    output:
        L.run_file("ir"),
    log:
        L.run_log("eval_image_reward"),
    benchmark:
        L.run_benchmark("eval_image_reward")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        image_reward=model("image_reward"),
        tokenizer=model("image_reward_tokenizer"),
        device=config["device"],
        gpu_env=GPU_ENV,
    shell:
        "OMP_NUM_THREADS={threads} {params.gpu_env} segmentdreamer eval-ir --views {input.views:q} --prompts {input.prompts:q}"
        " --prompt-id {wildcards.prompt_id:q} --image-reward {params.image_reward:q}"
        " --tokenizer {params.tokenizer:q} --device {params.device} --out {output:q} > {log:q} 2>&1"


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
        images=config["eval"]["fid"]["reference_images"],
        batch=config["eval"]["fid"]["batch"],
        steps=config["eval"]["fid"]["steps"],
        resolution=config["eval"]["fid"]["resolution"],
        seed=config["eval"]["fid"]["seed"],
        compile="--compile" if config["eval"]["fid"].get("compile") else "",
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
        features=config["eval"]["fid"]["features"],
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
