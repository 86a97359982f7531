# Table 1 per prompt set, the ablation figures, the gallery, and the inputs of `snakemake --report`.


localrules:
    table1_manifest,
    figure_manifest,
    gallery_manifest,


rule table1_manifest:
    input:
        table1_inputs,
    output:
        "<results>/table1/{prompt_set}.manifest.json",
    log:
        "<logs>/table1/{prompt_set}.manifest.log",
    benchmark:
        "<benchmarks>/table1/{prompt_set}.manifest.tsv"
    params:
        manifest=lambda wildcards: EXP.table1_manifest(wildcards.prompt_set),
    run:
        from segmentdreamer.experiment import write_json

        write_json(params.manifest, output[0])
        shell("echo wrote {output:q} > {log:q}")


rule table1_files:
    input:
        "<results>/table1/{prompt_set}.manifest.json",
    output:
        csv=report(
            "<results>/table1/{prompt_set}.csv",
            caption="../report/table1.rst",
            category="Table 1",
            labels={"prompt set": "{prompt_set}", "format": "csv"},
        ),
        md="<results>/table1/{prompt_set}.md",
        tex="<results>/table1/{prompt_set}.tex",
        plot=report(
            "<results>/table1/{prompt_set}_per_prompt.png",
            caption="../report/per_prompt.rst",
            category="Table 1",
            labels={"prompt set": "{prompt_set}", "format": "per-prompt plot"},
        ),
    log:
        "<logs>/table1/{prompt_set}.log",
    benchmark:
        "<benchmarks>/table1/{prompt_set}.tsv"
    conda:
        "../../environment.yml"
    params:
        prefix=prefix_of("csv"),
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer table --manifest {input:q} --out {params.prefix:q} > {log:q} 2>&1"


rule figure_manifest:
    input:
        lambda wildcards: manifest_inputs(EXP.figure_manifest(wildcards.name)),
    output:
        "<results>/figures/{name}.manifest.json",
    log:
        "<logs>/figures/{name}.manifest.log",
    benchmark:
        "<benchmarks>/figures/{name}.manifest.tsv"
    wildcard_constraints:
        name="|".join(EXP.ablations) or "no-ablations",
    params:
        manifest=lambda wildcards: EXP.figure_manifest(wildcards.name),
    run:
        from segmentdreamer.experiment import write_json

        write_json(params.manifest, output[0])
        shell("echo wrote {output:q} > {log:q}")


rule gallery_manifest:
    input:
        lambda wildcards: manifest_inputs(EXP.gallery_manifest()),
    output:
        "<results>/figures/gallery.manifest.json",
    log:
        "<logs>/figures/gallery.manifest.log",
    benchmark:
        "<benchmarks>/figures/gallery.manifest.tsv"
    params:
        manifest=lambda wildcards: EXP.gallery_manifest(),
    run:
        from segmentdreamer.experiment import write_json

        write_json(params.manifest, output[0])
        shell("echo wrote {output:q} > {log:q}")


rule figure:
    input:
        "<results>/figures/{name}.manifest.json",
    output:
        png=report(
            "<results>/figures/{name}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{name}"},
        ),
        pdf="<results>/figures/{name}.pdf",
        csv="<results>/figures/{name}_metrics.csv",
        md="<results>/figures/{name}_metrics.md",
        plot=report(
            "<results>/figures/{name}_plot.png",
            caption="../report/figure_plot.rst",
            category="Figures",
            labels={"figure": "{name}", "kind": "metric plot"},
        ),
    log:
        "<logs>/figures/{name}.log",
    benchmark:
        "<benchmarks>/figures/{name}.tsv"
    conda:
        "../../environment.yml"
    params:
        prefix=prefix_of("png"),
    shell:
        "OMP_NUM_THREADS={threads} segmentdreamer figure --manifest {input:q} --out {params.prefix:q} > {log:q} 2>&1"
