"""The file MLflow logs as the model's code (models-from-code); nothing imports it.

``mlflow.pyfunc.load_model`` and ``mlflow models serve`` execute it: it takes the runtime from
the installed leadscore package and names the model instance. Whoever can write a model's
artifacts can change this file, and so run code wherever the model is loaded that way.
"""

import mlflow

from leadscore.serving.pyfunc import LeadScoringModel

mlflow.models.set_model(LeadScoringModel())
