# Per-run CLIP-L and ImageReward over the ring's views; per-method FID against a Stable Diffusion
# reference set generated from the same prompts.


rule eval_clip:
    input:
        views="<run>/views",
        prompts=prompt_file,
        models=model_inputs(),
    output:
        "<run>/clip.json",
    log:
        "<run>/logs/eval_clip.log",
    benchmark:
        "<run>/logs/eval_clip.benchmark.tsv"
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        clip=model("clip"),
        device=config["device"],
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer eval-clip --views {input.views:q} --prompts {input.prompts:q}"
        " --prompt-id {wildcards.prompt_id:q} --clip {params.clip:q} --device {params.device}"
        " --out {output:q} > {log:q} 2>&1"


rule eval_image_reward:
    input:
        views="<run>/views",
        prompts=prompt_file,
        models=model_inputs(),
    output:
        "<run>/ir.json",
    log:
        "<run>/logs/eval_image_reward.log",
    benchmark:
        "<run>/logs/eval_image_reward.benchmark.tsv"
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        image_reward=model("image_reward"),
        tokenizer=model("image_reward_tokenizer"),
        device=config["device"],
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer eval-ir --views {input.views:q} --prompts {input.prompts:q}"
        " --prompt-id {wildcards.prompt_id:q} --image-reward {params.image_reward:q}"
        " --tokenizer {params.tokenizer:q} --device {params.device} --out {output:q} > {log:q} 2>&1"


rule reference_images:
    input:
        prompts=prompt_file,
        models=model_inputs(),
    output:
        summary="<results>/reference/{prompt_set}.json",
    log:
        "<logs>/reference/{prompt_set}.log",
    benchmark:
        "<benchmarks>/reference/{prompt_set}.tsv"
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        folder=prefix_of("summary"),
        sd=model("sd"),
        images=config["eval"]["fid"]["reference_images"],
        batch=config["eval"]["fid"]["batch"],
        steps=config["eval"]["fid"]["steps"],
        resolution=config["eval"]["fid"]["resolution"],
        seed=config["eval"]["fid"]["seed"],
        compile="--compile" if config["eval"]["fid"].get("compile") else "",
        device=config["device"],
    shell:
        # Images go to a folder that is not a declared output, so a killed job resumes where it stopped.
        "OMP_NUM_THREADS={threads} segmentdreamer ref-images --prompts {input.prompts:q} --count {params.images} --out {params.folder:q}"
        " --sd {params.sd:q} --batch {params.batch} --steps {params.steps} --resolution {params.resolution}"
        " --seed {params.seed} {params.compile} --device {params.device} --summary {output.summary:q} > {log:q} 2>&1"


rule fid:
    input:
        views=method_views,
        reference="<results>/reference/{prompt_set}.json",
        models=model_inputs(),
    output:
        "<results>/fid/{prompt_set}/{variant}.json",
    log:
        "<logs>/fid/{prompt_set}/{variant}.log",
    benchmark:
        "<benchmarks>/fid/{prompt_set}/{variant}.tsv"
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        reference=lambda wildcards, input: os.path.splitext(input.reference)[0],
        features=config["eval"]["fid"]["features"],
        inception=model("inception"),
        cache=str(EXP.results / "cache" / "fid"),  # params get no path variables
        device=config["device"],
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer fid --reference {params.reference:q} --generated {input.views:q}"
        " --features {params.features} --inception={params.inception:q} --cache {params.cache:q}"
        " --device {params.device} --out {output:q} > {log:q} 2>&1"
