"""The experiment plan: ``config.yaml`` -> variants and grids -> runs -> manifests, and where files live.

- :mod:`.layout`      every path pattern of the results folder (rules and Python read it)
- :mod:`.variants`    variants as TrainConfig overrides, ablation grids expanded into variants
- :mod:`.runs`        one run = (prompt set, prompt id, variant, seed)
- :mod:`.experiment`  a validated workflow config: its prompt sets, variants, ablations, runs, run configs
- :mod:`.manifests`   what the table and figure jobs aggregate

Nothing here imports torch: Snakemake plans hundreds of runs in well under a second.
"""
