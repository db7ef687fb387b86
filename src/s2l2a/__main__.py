from s2l2a.cli import main

main()
