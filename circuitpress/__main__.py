from circuitpress.cli import run

run()
