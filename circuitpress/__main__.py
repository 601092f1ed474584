from circuitpress.cli import main

main()
