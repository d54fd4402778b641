from oauth_hub.cli import main

main()
