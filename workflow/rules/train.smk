# One 3DGS asset per run (prompt set, prompt id, variant, seed). The resolved run config is a file and an
# input, so changing one hyperparameter reruns exactly the runs it changes; it is sealed
# (segmentdreamer/plan/stamp.py), so a hand-edited one is refused, never trained or scored as its variant.
# finished.json is written last, only by a run that passed the divergence checks; scores need it.


localrules:
    run_config,


rule run_config:
    input:
        prompts=prompt_file,
    output:
        L.run_file("config"),
    log:
        L.run_log("run_config"),
    benchmark:
        L.run_benchmark("run_config")
    conda:
        "../../environment.yml"
    params:
        text=lambda wildcards: planned_text(EXP.run_config(run_of(wildcards))),
    shell:
        WRITE_TEXT_SHELL


rule train:
    input:
        config=L.run_file("config"),
        init=init_input,
        setup=gpu_inputs(),
    output:
        ply=L.run_file("ply"),
        timing=L.run_file("timing"),
        finished=L.run_file("finished"),
    log:
        L.run_log("train"),
    benchmark:
        L.run_benchmark("train")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        folder=folder_of("ply"),
        gpu_env=GPU_ENV,
    shell:
        # Appended to, one header per attempt. After a killed run Snakemake removes the incomplete job's log, so
        # the rerun's log starts afresh; its 'resuming ... at iteration N' line says where training picked up.
        "date '+==== train attempt, %F %T ====' >> {log:q};"
        " OMP_NUM_THREADS={threads} {params.gpu_env} segmentdreamer train --config {input.config:q}"
        " --out {params.folder:q} --resume --planned >> {log:q} 2>&1"


# assets_per_job > 1: each group of runs of segmentdreamer/plan/batches.py trains in one job, one process on one
# prior (segmentdreamer/training/multi_asset.py). Their rules name concrete files, so Snakemake prefers them to `train`
# for those runs. A resumed job resumes every run in it from its own checkpoint; a member that diverges fails the
# job (no member becomes a result), and the rerun costs the finished members nothing (they resume at their end).
# Their helpers (TRAIN_BATCH_SHELL, train_batch_members, member_files, batch_resources) are in common.smk. Nothing
# in a rule body below may read `_batch` when the job runs (a shell line does): only at definition, as here.
for _batch in EXP.train_batches():

    rule:
        name:
            _batch.rule_name
        input:
            **member_files(_batch, "config", "config"),
            **member_inits(_batch),
            setup=gpu_inputs(),
        output:
            **member_files(_batch, "ply", "ply"),
            **member_files(_batch, "timing", "timing"),
            **member_files(_batch, "finished", "finished"),
        log:
            **{
                f"asset_{i}": L.run_log("train", run)
                for i, run in enumerate(_batch.runs)
            },
            job=L.job_log("train_batch", name=_batch.name),
        benchmark:
            L.job_benchmark("train_batch", name=_batch.name)
        conda:
            "../../environment.yml"
        resources:
            **batch_resources(len(_batch.runs)),
        params:
            members=train_batch_members(_batch),
            header=train_batch_header(len(_batch.runs)),
            gpu_env=GPU_ENV,
        shell:
            TRAIN_BATCH_SHELL
