from agentpm.cli import main

main()
