"""Explanations and model-risk views built in the toolkit (issue 16, parts 2, 4, 5 and validation).

- :mod:`.shapley`: exact Baseline-Shapley values over the schema's fields (the float model's ground
  truth the device's reason codes are validated against);
- :mod:`.ranking`: top-k reasons from attributions and agreement between two explainers;
- :mod:`.importance`: permutation importance (AUC loss) and mean |attribution| per field;
- :mod:`.pdp`: partial dependence and ICE curves;
- :mod:`.slices`: quality, approval and flip rates of every variant per group of a slice column;
- :mod:`.validation`: the device's explanations against exact float Shapley, the deletion test;
- :mod:`.model_card`: the model card (report/model_card.md, the report's section, the manifest's copy);
- :mod:`.analysis`: all of the above for a run directory, as report.json's ``explain`` section.

Nothing here writes a row of the data anywhere: outputs are aggregates (rates, means, curves over a
grid of values that are rounded quantiles of a split, never an applicant's record).
"""
