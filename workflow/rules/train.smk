# One 3DGS asset per run (prompt set, prompt id, variant, seed). The resolved run config is a file
# and an input, so changing one hyperparameter reruns exactly the runs it changes.


localrules:
    run_config,


rule run_config:
    input:
        prompts=prompt_file,
    output:
        RUN + "/config.yaml",
    log:
        RUN + "/logs/run_config.log",
    benchmark:
        RUN + "/logs/run_config.benchmark.tsv"
    params:
        settings=lambda wildcards: EXP.run_config(run_of(wildcards)),
    run:
        from segmentdreamer.experiment import write_run_config

        write_run_config(params.settings, output[0], log[0])


def init_input(wildcards):
    if config["init"]["method"] != "pointe":
        return []
    return EXP.init_path(wildcards.prompt_set, wildcards.prompt_id)


rule train:
    input:
        config=RUN + "/config.yaml",
        init=init_input,
        setup=gpu_inputs(),
    output:
        ply=RUN + "/gaussians.ply",
        timing=RUN + "/timing.json",
    log:
        RUN + "/logs/train.log",
    benchmark:
        RUN + "/logs/train.benchmark.tsv"
    params:
        folder=RUN,
        extensions=config["torch_extensions_dir"],
    resources:
        gpu=1,
    shell:
        "TORCH_EXTENSIONS_DIR={params.extensions:q} segmentdreamer train --config {input.config:q}"
        " --out {params.folder:q} --resume > {log:q} 2>&1"
