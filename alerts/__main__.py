from alerts.cli import main

main()
