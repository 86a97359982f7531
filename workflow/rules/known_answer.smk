# The known-answer demo (workflow/demo.yaml): with `models.sd: target-scene:<scene>` the prior's answer is
# a ground-truth scene, so each Table 1 run is scored by PSNR / SSIM / silhouette IoU against it over the
# evaluation ring, and shown beside it as a turntable. Target: `snakemake demo --configfile workflow/demo.yaml`.


localrules:
    known_answer_manifest,


rule eval_known_answer:
    input:
        config=L.run_file("config"),
        ply=L.run_file("ply"),
        finished=L.run_file("finished"),
    output:
        scores=L.run_file("known_answer"),
        video=report(
            L.run_file("comparison"),
            caption="../report/known_answer_turntable.rst",
            category="Known answer",
            subcategory="Turntables: ground truth | learned",
            labels={
                "method": "{variant}",
                "asset": "{prompt_id}, seed {seed}",
            },  # one asset label: render.smk says why
        ),
    log:
        L.run_log("eval_known_answer"),
    benchmark:
        L.run_benchmark("eval_known_answer")
    conda:
        "../../environment.yml"
    params:
        views=EXP.evaluation.views,
        resolution=EXP.evaluation.resolution,
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer known-answer --config {input.config:q} --ply {input.ply:q}"
        " --views {params.views} --resolution {params.resolution} --out {output.scores:q}"
        " --video {output.video:q} > {log:q} 2>&1"


rule known_answer_manifest:
    input:
        lambda wildcards: [
            run[key]
            for run in known_answer_manifest(EXP, wildcards.prompt_set)["runs"]
            for key in ("scores", "comparison")
        ],
    output:
        L.known_answer("manifest"),
    log:
        L.job_log("known_answer_manifest"),
    params:
        manifest=lambda wildcards: known_answer_manifest(EXP, wildcards.prompt_set),
    run:
        from segmentdreamer.atomic import write_json

        write_json(params.manifest, output[0])
        shell("echo wrote {output:q} > {log:q}")


rule known_answer_table:
    input:
        L.known_answer("manifest"),
    output:
        csv=report(
            L.known_answer("csv"),
            caption="../report/known_answer.rst",
            category="Known answer",
            subcategory="Table",
            labels={"prompt set": "{prompt_set}", "format": "csv"},
        ),
        md=L.known_answer("md"),
        html=report(
            L.known_answer("html"),
            caption="../report/known_answer.rst",
            category="Known answer",
            subcategory="Overview",
            labels={"prompt set": "{prompt_set}", "page": "table, curves, turntables"},
        ),
        plot=report(
            L.known_answer("plot"),
            caption="../report/known_answer_curve.rst",
            category="Known answer",
            subcategory="Learning curves",
            labels={"prompt set": "{prompt_set}", "format": "PSNR vs iteration"},
        ),
    log:
        L.job_log("known_answer"),
    benchmark:
        L.job_benchmark("known_answer")
    conda:
        "../../environment.yml"
    params:
        prefix=prefix_of("csv"),
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer known-answer-table --manifest {input:q} --out {params.prefix:q} > {log:q} 2>&1"


rule demo:
    """Known-answer demo: every method distils a ground-truth scene; PSNR/SSIM/IoU table and curves."""
    input:
        known_answer_outputs(EXP.table1_sets),


# Theorem 1 measured where the score is known in closed form (prior/analytic.py, evaluate/theorem1.py):
# `snakemake analytic_theorem1` (CPU, about a minute; needs no weights and no prompt).
rule analytic_theorem1:
    """Theorem 1 measured on the analytic Gaussian-mixture prior (CPU, minutes)."""
    output:
        csv=report(
            L.analytic("csv", "theorem1"),
            caption="../report/theorem1.rst",
            category="Analytic prior",
            labels={"experiment": "Theorem 1", "format": "csv"},
        ),
        md=L.analytic("md", "theorem1"),
        png=report(
            L.analytic("png", "theorem1"),
            caption="../report/theorem1.rst",
            category="Analytic prior",
            labels={"experiment": "Theorem 1", "format": "plot"},
        ),
    log:
        L.job_log("analytic", name="theorem1"),
    benchmark:
        L.job_benchmark("analytic", name="theorem1")
    conda:
        "../../environment.yml"
    params:
        prefix=prefix_of("csv"),
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer analytic-theorem1 --out {params.prefix:q} > {log:q} 2>&1"


# The five losses distilling a latent under the analytic prior at guidance scales 1, 3, 7.5
# (evaluate/analytic_losses.py): `snakemake analytic_losses` (CPU, 5-10 minutes; no weights).
rule analytic_losses:
    """The five losses on the analytic prior per guidance scale (CPU, minutes)."""
    output:
        csv=report(
            L.analytic("csv", "losses"),
            caption="../report/analytic_losses.rst",
            category="Analytic prior",
            labels={"experiment": "five losses", "format": "csv"},
        ),
        md=L.analytic("md", "losses"),
        png=report(
            L.analytic("png", "losses"),
            caption="../report/analytic_losses.rst",
            category="Analytic prior",
            labels={"experiment": "five losses", "format": "plot"},
        ),
    log:
        L.job_log("analytic", name="losses"),
    benchmark:
        L.job_benchmark("analytic", name="losses")
    conda:
        "../../environment.yml"
    params:
        prefix=prefix_of("csv"),
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer analytic-losses --out {params.prefix:q} > {log:q} 2>&1"
