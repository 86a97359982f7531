# Table 1 per prompt set, the ablation figures, the gallery, and the inputs of `snakemake --report`.


localrules:
    table1_manifest,
    figure_manifest,
    gallery_manifest,


rule table1_manifest:
    input:
        table1_manifest_inputs,
    output:
        L.table1("manifest"),
    log:
        L.job_log("table1_manifest"),
    benchmark:
        L.job_benchmark("table1_manifest")
    params:
        manifest=lambda wildcards: table1_manifest(EXP, wildcards.prompt_set),
    run:
        from segmentdreamer.atomic import write_json

        write_json(params.manifest, output[0])
        shell("echo wrote {output:q} > {log:q}")


rule table1_files:
    input:
        L.table1("manifest"),
    output:
        csv=report(
            L.table1("csv"),
            caption="../report/table1.rst",
            category="Table 1",
            labels={"prompt set": "{prompt_set}", "format": "csv"},
        ),
        md=L.table1("md"),
        tex=L.table1("tex"),
        plot=report(
            L.table1("plot"),
            caption="../report/per_prompt.rst",
            category="Table 1",
            labels={"prompt set": "{prompt_set}", "format": "per-prompt plot"},
        ),
        html=report(
            L.table1("html"),
            caption="../report/table1_overview.rst",
            category="Table 1",
            labels={"prompt set": "{prompt_set}", "format": "table, plot, turntables"},
        ),
    log:
        L.job_log("table1"),
    benchmark:
        L.job_benchmark("table1")
    conda:
        "../../environment.yml"
    params:
        prefix=prefix_of("csv"),
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer table --manifest {input:q} --out {params.prefix:q} > {log:q} 2>&1"


rule figure_manifest:
    input:
        lambda wildcards: panel_inputs(figure_manifest(EXP, wildcards.name)),
    output:
        L.figure("manifest"),
    log:
        L.job_log("figure_manifest"),
    benchmark:
        L.job_benchmark("figure_manifest")
    wildcard_constraints:
        name="|".join(EXP.ablations) or "no-ablations",
    params:
        manifest=lambda wildcards: figure_manifest(EXP, wildcards.name),
    run:
        from segmentdreamer.atomic import write_json

        write_json(params.manifest, output[0])
        shell("echo wrote {output:q} > {log:q}")


rule gallery_manifest:
    """(internal) the gallery figure's manifest; build `gallery` instead."""
    input:
        lambda wildcards: panel_inputs(gallery_manifest(EXP)),
    output:
        L.figure("manifest", "gallery"),
    log:
        L.job_log("gallery_manifest"),
    benchmark:
        L.job_benchmark("gallery_manifest")
    params:
        manifest=lambda wildcards: gallery_manifest(EXP),
    run:
        from segmentdreamer.atomic import write_json

        write_json(params.manifest, output[0])
        shell("echo wrote {output:q} > {log:q}")


rule figure:
    input:
        L.figure("manifest"),
    output:
        png=report(
            L.figure("png"),
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{name}"},
        ),
        pdf=L.figure("pdf"),
        csv=L.figure("csv"),
        md=L.figure("md"),
        plot=report(
            L.figure("plot"),
            caption="../report/figure_plot.rst",
            category="Figures",
            labels={"figure": "{name}", "kind": "metric plot"},
        ),
    log:
        L.job_log("figure"),
    benchmark:
        L.job_benchmark("figure")
    conda:
        "../../environment.yml"
    params:
        prefix=prefix_of("png"),
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer figure --manifest {input:q} --out {params.prefix:q} > {log:q} 2>&1"
