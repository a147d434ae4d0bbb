"""`gatekeeper demo`: the whole promotion loop on one machine, with nothing else to install.

``run.py`` starts and stops the pieces, ``services.py`` the servers that are processes of their
own, ``team.py`` names the people and writes gatekeeper.yaml, ``pipeline.py`` is the KFP pipeline
that trains the models, ``image.py`` pushes their serving image, and ``seed.py`` makes the
champion and lets the challenger ask to follow it.
"""
