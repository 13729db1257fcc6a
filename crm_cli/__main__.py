from crm_cli.main import cli

cli(prog_name="crm")
