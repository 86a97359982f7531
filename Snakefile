# SegmentDreamer: regenerate every result of the paper.
#   snakemake --cores 1 --resources gpu=1                 (or plain `snakemake`: profiles/default)
#   snakemake table1 | ablation_segments | ablation_threshold | ablation_approx | ablation_cfg | gallery
#   snakemake --configfile workflow/smoke.yaml --cores 2  (tiny models, CPU, minutes)
#   snakemake demo --configfile workflow/demo.yaml --cores 2   (known-answer prior, no weights, CPU, minutes)
#   snakemake meshes                                      (a coloured mesh.glb and a .splat for every run)
#   snakemake gpteval3d                                   (every Table 1 run in GPTEval3D's layout: rgb + normal maps)
#   snakemake analytic_theorem1 analytic_losses             (analytic prior: Theorem 1 and the five losses, CPU)
#   snakemake miniworld_models --configfile workflow/miniworld.yaml   (train the miniworld's learned models, GPU)
# Rules live in workflow/rules/*.smk; the plan (runs, variants, checks) in segmentdreamer/experiment.py.
# Every job runs with OMP_NUM_THREADS={threads} (1 unless a rule says otherwise), so parallel jobs on one
# machine do not oversubscribe its cores.

from snakemake.utils import min_version, update_config, validate

from segmentdreamer.plan.command_line import typed_overrides

min_version("9.0")


# A --configfile on the command line replaces config.yaml (smoke.yaml is a complete config);
# --config KEY=VALUE merges on top of either.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# --config 'train={"iterations": 300}' means what it means in a config file (Snakemake passes it as "300").
update_config(config, typed_overrides(dict(workflow.config_settings.config)))
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/setup.smk"
include: "workflow/rules/init.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/render.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/known_answer.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/miniworld.smk"


report: "workflow/report/workflow.rst"


rule all:
    """Default: Table 1, the ablation figures and the gallery (the demo with a known-answer config)."""
    default_target: True
    input:
        (
            known_answer_outputs(EXP.table1_sets)
            if KNOWN_ANSWER
            else [
                table1_outputs(EXP.table1_sets),
                ablation_outputs(EXP.ablations),
                gallery_outputs(),
            ]
        ),


rule table1:
    """Table 1 per prompt set: CLIP-L, ImageReward, time, FID (CSV, Markdown, LaTeX, HTML)."""
    input:
        table1_outputs(EXP.table1_sets),


rule ablations:
    """Every ablation figure (segments, threshold, approx, cfg)."""
    input:
        ablation_outputs(EXP.ablations),


for _name in EXP.ablations:

    rule:
        """One ablation figure (see `ablations` in config.yaml)."""
        name:
            f"ablation_{_name}"
        input:
            ablation_outputs([_name]),


rule gallery:
    """Figure 1's prompts with Perp-Neg: a labelled grid and turntables."""
    input:
        gallery_outputs(),
