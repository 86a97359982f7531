# The evaluation ring (white background) and a turntable video per run.


rule render:
    input:
        ply=L.run_file("ply"),
        finished=L.run_file("finished"),
        setup=gpu_inputs(),
    output:
        views=directory(L.run_file("views")),
        # every turntable plays in the report on its prompt set's Table 1 page (the report offers an
        # .mp4 entry only as a download)
        video=L.run_file("turntable"),
    log:
        L.run_log("render"),
    benchmark:
        L.run_benchmark("render")
    conda:
        "../../environment.yml"
    resources:
        gpu=GPU_PER_JOB,
    params:
        views=EXP.evaluation.views,
        resolution=EXP.evaluation.resolution,
        elevation=EXP.evaluation.elevation,
        device=config["device"],
        gpu_env=GPU_ENV,
    shell:
        "OMP_NUM_THREADS={threads} {params.gpu_env} segmentdreamer render --ply {input.ply:q}"
        " --out {output.views:q} --video {output.video:q} --views {params.views}"
        " --resolution {params.resolution} --elevation {params.elevation} --device {params.device}"
        " > {log:q} 2>&1"
