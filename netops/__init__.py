"""The `netops` console command: a small core that each capability registers its verbs with."""
