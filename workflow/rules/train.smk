# One 3DGS asset per run (prompt set, prompt id, variant, seed). The resolved run config is a file
# and an input, so changing one hyperparameter reruns exactly the runs it changes.


localrules:
    run_config,


rule run_config:
    input:
        prompts=prompt_file,
    output:
        "<run>/config.yaml",
    log:
        "<run>/logs/run_config.log",
    benchmark:
        "<run>/logs/run_config.benchmark.tsv"
    params:
        settings=lambda wildcards: EXP.run_config(run_of(wildcards)),
    run:
        from segmentdreamer.experiment import write_run_config

        write_run_config(params.settings, output[0], log[0])


rule train:
    input:
        config="<run>/config.yaml",
        init=init_input,
        setup=gpu_inputs(),
    output:
        ply="<run>/gaussians.ply",
        timing="<run>/timing.json",
    log:
        "<run>/logs/train.log",
    benchmark:
        "<run>/logs/train.benchmark.tsv"
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        folder=folder_of("ply"),
        extensions=extensions_dir,
    shell:
        "OMP_NUM_THREADS={threads} TORCH_EXTENSIONS_DIR={params.extensions:q} segmentdreamer train --config {input.config:q}"
        " --out {params.folder:q} --resume > {log:q} 2>&1"
