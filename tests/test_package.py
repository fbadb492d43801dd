import mlflow_descope_auth


def test_version_matches_the_compiled_core() -> None:
    from mlflow_descope_auth import _core

    assert mlflow_descope_auth.__version__ == _core.__version__
    assert mlflow_descope_auth.__version__.count(".") == 2
