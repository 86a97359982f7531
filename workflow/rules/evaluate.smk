# Per-run CLIP-L and ImageReward over the ring's views; per-method FID against a Stable Diffusion
# reference set generated from the same prompts.


rule eval_clip:
    input:
        views=RUN + "/views",
        prompts=prompt_file,
        models=model_inputs(),
    output:
        RUN + "/clip.json",
    log:
        RUN + "/logs/eval_clip.log",
    benchmark:
        RUN + "/logs/eval_clip.benchmark.tsv"
    params:
        clip=model("clip"),
        device=config["device"],
    resources:
        gpu=1,
    shell:
        "segmentdreamer eval-clip --views {input.views:q} --prompts {input.prompts:q}"
        " --prompt-id {wildcards.prompt_id:q} --clip {params.clip:q} --device {params.device}"
        " --out {output:q} > {log:q} 2>&1"


rule eval_image_reward:
    input:
        views=RUN + "/views",
        prompts=prompt_file,
        models=model_inputs(),
    output:
        RUN + "/ir.json",
    log:
        RUN + "/logs/eval_image_reward.log",
    benchmark:
        RUN + "/logs/eval_image_reward.benchmark.tsv"
    params:
        image_reward=model("image_reward"),
        tokenizer=model("image_reward_tokenizer"),
        device=config["device"],
    resources:
        gpu=1,
    shell:
        "segmentdreamer eval-ir --views {input.views:q} --prompts {input.prompts:q}"
        " --prompt-id {wildcards.prompt_id:q} --image-reward {params.image_reward:q}"
        " --tokenizer {params.tokenizer:q} --device {params.device} --out {output:q} > {log:q} 2>&1"


rule reference_images:
    input:
        prompts=prompt_file,
        models=model_inputs(),
    output:
        R + "/reference/{prompt_set}.json",
    log:
        LOGS + "/reference/{prompt_set}.log",
    benchmark:
        BENCH + "/reference/{prompt_set}.tsv"
    params:
        folder=R + "/reference/{prompt_set}",
        sd=model("sd"),
        images=config["eval"]["fid"]["reference_images"],
        batch=config["eval"]["fid"]["batch"],
        steps=config["eval"]["fid"]["steps"],
        resolution=config["eval"]["fid"]["resolution"],
        seed=config["eval"]["fid"]["seed"],
        device=config["device"],
    resources:
        gpu=1,
    shell:
        # Images go to a folder that is not a declared output, so a killed job resumes where it stopped.
        "segmentdreamer ref-images --prompts {input.prompts:q} --count {params.images} --out {params.folder:q}"
        " --sd {params.sd:q} --batch {params.batch} --steps {params.steps} --resolution {params.resolution}"
        " --seed {params.seed} --device {params.device} --summary {output:q} > {log:q} 2>&1"


def method_views(wildcards):
    runs = EXP.runs(wildcards.prompt_set, wildcards.variant)
    return run_files(runs, "views")


rule fid:
    input:
        views=method_views,
        reference=R + "/reference/{prompt_set}.json",
        models=model_inputs(),
    output:
        R + "/fid/{prompt_set}/{variant}.json",
    log:
        LOGS + "/fid/{prompt_set}/{variant}.log",
    benchmark:
        BENCH + "/fid/{prompt_set}/{variant}.tsv"
    params:
        reference=R + "/reference/{prompt_set}",
        features=config["eval"]["fid"]["features"],
        inception=model("inception"),
        cache=f"{R}/cache/fid",
    resources:
        gpu=1,
    shell:
        "segmentdreamer fid --reference {params.reference:q} --generated {input.views:q}"
        " --features {params.features} --inception {params.inception:q} --cache {params.cache:q}"
        " --out {output:q} > {log:q} 2>&1"
