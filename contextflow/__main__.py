from contextflow.cli import main

main()
