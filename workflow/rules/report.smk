# Table 1 per prompt set, the ablation figures, the gallery, and the inputs of `snakemake --report`.


localrules:
    table1_manifest,
    figure_manifest,
    gallery_manifest,


def table1_inputs(wildcards):
    manifest = EXP.table1_manifest(wildcards.prompt_set)
    files = [f for entry in manifest["methods"].values() for key, value in entry.items() for f in
             ([value] if key == "fid" else value)]
    return files


rule table1_manifest:
    input:
        table1_inputs,
    output:
        R + "/table1/{prompt_set}.manifest.json",
    log:
        LOGS + "/table1/{prompt_set}.manifest.log",
    benchmark:
        BENCH + "/table1/{prompt_set}.manifest.tsv"
    params:
        manifest=lambda wildcards: EXP.table1_manifest(wildcards.prompt_set),
    run:
        from segmentdreamer.experiment import write_json

        write_json(params.manifest, output[0])
        shell("echo wrote {output:q} > {log:q}")


rule table1_files:
    input:
        R + "/table1/{prompt_set}.manifest.json",
    output:
        csv=report(
            R + "/table1/{prompt_set}.csv",
            caption="../report/table1.rst",
            category="Table 1",
            labels={"prompt set": "{prompt_set}", "format": "csv"},
        ),
        md=R + "/table1/{prompt_set}.md",
        tex=R + "/table1/{prompt_set}.tex",
        plot=report(
            R + "/table1/{prompt_set}_per_prompt.png",
            caption="../report/per_prompt.rst",
            category="Table 1",
            labels={"prompt set": "{prompt_set}", "format": "per-prompt plot"},
        ),
    log:
        LOGS + "/table1/{prompt_set}.log",
    benchmark:
        BENCH + "/table1/{prompt_set}.tsv"
    params:
        prefix=R + "/table1/{prompt_set}",
    shell:
        "segmentdreamer table --manifest {input:q} --out {params.prefix:q} > {log:q} 2>&1"


def manifest_inputs(manifest):
    return [p[key] for p in manifest["panels"] for key in ("views", "clip", "ir") if p[key]]


rule figure_manifest:
    input:
        lambda wildcards: manifest_inputs(EXP.figure_manifest(wildcards.name)),
    output:
        R + "/figures/{name}.manifest.json",
    log:
        LOGS + "/figures/{name}.manifest.log",
    benchmark:
        BENCH + "/figures/{name}.manifest.tsv"
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
        R + "/figures/gallery.manifest.json",
    log:
        LOGS + "/figures/gallery.manifest.log",
    benchmark:
        BENCH + "/figures/gallery.manifest.tsv"
    params:
        manifest=lambda wildcards: EXP.gallery_manifest(),
    run:
        from segmentdreamer.experiment import write_json

        write_json(params.manifest, output[0])
        shell("echo wrote {output:q} > {log:q}")


rule figure:
    input:
        R + "/figures/{name}.manifest.json",
    output:
        png=report(
            R + "/figures/{name}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels={"figure": "{name}"},
        ),
        pdf=R + "/figures/{name}.pdf",
        csv=R + "/figures/{name}_metrics.csv",
        md=R + "/figures/{name}_metrics.md",
        plot=report(
            R + "/figures/{name}_plot.png",
            caption="../report/figure_plot.rst",
            category="Figures",
            labels={"figure": "{name}", "kind": "metric plot"},
        ),
    log:
        LOGS + "/figures/{name}.log",
    benchmark:
        BENCH + "/figures/{name}.tsv"
    params:
        prefix=R + "/figures/{name}",
    shell:
        "segmentdreamer figure --manifest {input:q} --out {params.prefix:q} > {log:q} 2>&1"
