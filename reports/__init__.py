"""present: the HTML report of a run folder, results.csv and the terminal table.

    reports.html.write_report(run_dir, out=None, advice=None) -> Path   # report.html + results.csv
    reports.tables.results_table(records, manifest=None) -> rich.table.Table
    tunewise report RUN_DIR [-o FILE] [--advice FILE]                  # reports/cli.py

run_data reads the run folder (tolerating partial runs), analysis draws the conclusions (best
values, Pareto fronts, the verdict), plots draws inline SVG, format formats numbers, reproduce
rebuilds the `tunewise bench` command from the stored plan. Nothing here runs a model or
imports torch.
"""
