# Initial Gaussians per prompt: Point-E text-to-point-cloud (cached per init prompt and seed).


rule init_pointe:
    input:
        prompts=prompt_file,
        models=model_inputs(),
    output:
        L.init(),
    log:
        L.job_log("init"),
    benchmark:
        L.job_benchmark("init")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        steps=EXP.init.steps,
        copies=EXP.init.copies,
        pointe=model("pointe"),
        pointe_clip=model("pointe_clip"),
        cache=EXP.layout.cache("pointe"),  # params get no path variables
        device=config["device"],
        gpu_env=GPU_ENV,
    shell:
        "OMP_NUM_THREADS={threads} {params.gpu_env} segmentdreamer init --prompts {input.prompts:q} --prompt-id {wildcards.prompt_id:q}"
        " --steps {params.steps} --copies {params.copies} --pointe {params.pointe:q}"
        " --pointe-clip {params.pointe_clip:q} --cache {params.cache:q} --device {params.device}"
        " --out {output:q} > {log:q} 2>&1"
