"""Training: the loop (loop.py), one GAN step (step.py), the state a checkpoint holds (state.py),
and what keeps a run alive (nonfinite.py, signals.py, resume.py).

Importing this package imports nothing else: the command line reads ``resume`` before torch loads.
"""
