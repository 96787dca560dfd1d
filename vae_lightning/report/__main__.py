from vae_lightning.report.sweep_report import cli

cli()
