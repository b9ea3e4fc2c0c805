"""The serving fixtures (a model exported by the pipeline's own functions, and the
serving image) for the tests that run the image under the manifests' constraints."""

from tests.serve.conftest import breast_cancer_model, image, serve_params

__all__ = ["breast_cancer_model", "image", "serve_params"]
