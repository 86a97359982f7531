# A coloured mesh (.glb) and the web viewers' .splat per run: `snakemake meshes` (every run of the plan).
# GPTEval3D's layout of every Table 1 run: `snakemake gpteval3d` (segmentdreamer/export/gpteval3d.py).


rule export_mesh:
    input:
        ply=L.run_file("ply"),
        finished=L.run_file("finished"),
    output:
        mesh=L.run_file("mesh"),
        splat=L.run_file("splat"),
    log:
        L.run_log("export_mesh"),
    benchmark:
        L.run_benchmark("export_mesh")
    conda:
        "../../environment.yml"
    params:
        resolution=config["export"]["mesh_resolution"],
        level=config["export"]["mesh_level"],
        faint=config["export"]["mesh_faint_fraction"],
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer export-mesh --ply {input.ply:q} --out {output.mesh:q}"
        " --resolution {params.resolution} --level {params.level} --faint-fraction {params.faint} > {log:q} 2>&1"
        " && segmentdreamer export-splat --ply {input.ply:q} --out {output.splat:q} >> {log:q} 2>&1"


rule meshes:
    """A coloured mesh.glb and a gaussians.splat beside every run's .ply."""
    input:
        run_files(EXP.all_runs(), "mesh"),
        run_files(EXP.all_runs(), "splat"),


rule gpteval3d_prompts:
    input:
        prompt_file,
    output:
        L.gpteval3d_prompts(),
    log:
        L.job_log("gpteval3d_prompts"),
    conda:
        "../../environment.yml"
    shell:
        "segmentdreamer gpteval3d-prompts --prompts {input:q} --out {output:q} > {log:q} 2>&1"


rule gpteval3d_views:
    input:
        ply=gpteval3d_run_file("ply"),
        finished=gpteval3d_run_file("finished"),
        setup=gpu_inputs(),
    output:
        directory(L.gpteval3d_run()),
    log:
        L.job_log("gpteval3d_views"),
    benchmark:
        L.job_benchmark("gpteval3d_views")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        device=config["device"],
        gpu_env=GPU_ENV,
    shell:
        "OMP_NUM_THREADS={threads} {params.gpu_env} segmentdreamer export-gpteval3d --ply {input.ply:q} --out {output:q}"
        " --device {params.device} > {log:q} 2>&1"


rule gpteval3d:
    """Every Table 1 run in GPTEval3D's layout (120 rgb + normal maps each)."""
    input:
        [EXP.layout.gpteval3d_prompts(s) for s in EXP.table1_sets],
        [gpteval3d_folder(run) for s in EXP.table1_sets for run in EXP.table1_runs(s)],
