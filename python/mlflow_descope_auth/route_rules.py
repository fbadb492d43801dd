"""What each MLflow endpoint needs: the classification rules of the route
table (contract §5), kept apart from the discovery code so they can be read,
and reviewed, in one place. docs/routes.md explains every judgement call.

Nothing here imports MLflow.
"""

from __future__ import annotations

import re

PUBLIC = "PUBLIC"
AUTHENTICATED = "AUTHENTICATED"
READ = "READ"
EDIT = "EDIT"
MANAGE = "MANAGE"


# --- Protobuf RPCs ------------------------------------------------------------

# The first word of the RPC's name says what it does, unless an override below
# says otherwise. A verb missing here leaves the RPC unclassified (MANAGE).
VERBS = {
    "Get": READ,
    "Search": READ,
    "List": READ,
    "Query": READ,
    "Calculate": READ,
    "Download": READ,
    "Create": EDIT,
    "Log": EDIT,
    "Set": EDIT,
    "Update": EDIT,
    "Upsert": EDIT,
    "Start": EDIT,
    "End": EDIT,
    "Finalize": EDIT,
    "Link": EDIT,
    "Register": EDIT,
    "Rename": EDIT,
    "Transition": EDIT,
    "Upload": EDIT,
    # Multipart upload steps are part of uploading an artifact.
    "Complete": EDIT,
    "Abort": EDIT,
    # Associations: a dataset with experiments, items with a review queue, a
    # model with a gateway endpoint.
    "Add": EDIT,
    "Remove": EDIT,
    "Attach": EDIT,
    "Detach": EDIT,
    # Stops a job the caller could start; destroys nothing.
    "Cancel": EDIT,
    # Deleting or restoring a whole object.
    "Delete": MANAGE,
    "Restore": MANAGE,
}

# "Batch" alone says nothing; the word after it decides.
_BATCHVERBS = {"Get": READ}

RPC_OVERRIDES = {
    # Minting a download URL reads the artifact; nothing is created.
    "CreatePresignedDownloadUrl": READ,
    # Creates the caller's own review queue on first use.
    "GetOrCreateUserQueue": EDIT,
    # Deletes of parts of an object, not of the object: the same level as
    # setting them.
    "DeleteTag": EDIT,
    "DeleteExperimentTag": EDIT,
    "DeleteRegisteredModelTag": EDIT,
    "DeleteModelVersionTag": EDIT,
    "DeleteRegisteredModelAlias": EDIT,
    "DeleteLoggedModelTag": EDIT,
    "DeleteTraceTag": EDIT,
    "DeleteTraceTagV3": EDIT,
    "DeleteAssessment": EDIT,
    "DeleteDatasetTag": EDIT,
    "DeleteDatasetRecords": EDIT,
    "DeleteGatewayEndpointTag": EDIT,
    "DeleteGatewayEndpointBinding": EDIT,
    # An artifact path may name a directory: one DELETE can wipe a run's or an
    # experiment's whole artifact tree, which is deleting whole objects. (PUT
    # and the multipart steps stay EDIT.)
    "DeleteArtifact": MANAGE,
    # Webhook administration: a webhook URL often embeds a secret (Slack,
    # Teams), and TestWebhook makes the server call that URL.
    "CreateWebhook": MANAGE,
    "ListWebhooks": MANAGE,
    "GetWebhook": MANAGE,
    "UpdateWebhook": MANAGE,
    "TestWebhook": MANAGE,
    # Workspace administration (reading workspaces stays READ).
    "CreateWorkspace": MANAGE,
    "UpdateWorkspace": MANAGE,
    # Secret, budget and guardrail administration. Reading secret *info*
    # (never the value), budgets and guardrails stays READ.
    "CreateGatewaySecret": MANAGE,
    "UpdateGatewaySecret": MANAGE,
    "CreateGatewayBudgetPolicy": MANAGE,
    "UpdateGatewayBudgetPolicy": MANAGE,
    "CreateGatewayGuardrail": MANAGE,
    "AddGuardrailToEndpoint": MANAGE,
    "RemoveGuardrailFromEndpoint": MANAGE,
    "UpdateEndpointGuardrailConfig": MANAGE,
}

# Routes that make the job executor run a stored or submitted scorer. While
# MLFLOW_SERVER_ENABLE_CUSTOM_SCORERS is on, a scorer may be a custom @scorer
# whose source the executor exec()s: that is running user code on the host,
# which is MANAGE (job submission). With it off (MLflow's default) MLflow
# refuses such scorers and these stay EDIT.
RUNS_SCORERS = frozenset(
    {
        "RegisterScorer",
        "CreatePromptOptimizationJob",
        "_upsert_online_scoring_config",
        "_invoke_scorer_handler",
        "_invoke_genai_evaluate_handler",
    }
)


def rpc_level(rpc: str) -> str | None:
    """The level an RPC (by its request message name) needs, or None when no
    rule decides it."""
    if rpc in RPC_OVERRIDES:
        return RPC_OVERRIDES[rpc]
    words = re.findall(r"[A-Z][a-z]*", rpc)
    if not words:
        return None
    if words[0] == "Batch":
        return _BATCHVERBS.get(words[1]) if len(words) > 1 else None
    return VERBS.get(words[0])


# --- Flask views without an RPC -----------------------------------------------

# (view function, method) -> level. A view or method missing here is
# unclassified.
FLASK_VIEWS = {
    # Liveness and version probes, and the UI's assets (JS, CSS, fonts,
    # favicon): nothing about any experiment, run or model.
    ("health", "GET"): PUBLIC,
    ("version", "GET"): PUBLIC,
    ("serve_static_file", "GET"): PUBLIC,
    # Flask's own static route serves the same UI build directory.
    ("static", "GET"): PUBLIC,
    # Server capabilities the client asks for before signing in (contract §4).
    ("_get_server_info", "GET"): PUBLIC,
    # The UI's index page is not public, so that a browser without a session
    # is sent to the login page; any signed-in user may load it, and a user
    # with NO_PERMISSIONS then sees why the UI offers nothing (contract §7).
    ("serve", "GET"): AUTHENTICATED,
    # GraphQL serves searches and gets only, POST included (its "mutations"
    # are searches); checked against the installed schema at build time.
    ("_graphql", "GET"): READ,
    ("_graphql", "POST"): READ,
    # Artifact, metric and trace reads for the UI.
    ("serve_artifacts", "GET"): READ,
    ("serve_model_version_artifact", "GET"): READ,
    ("serve_get_metric_history_bulk", "GET"): READ,
    ("serve_get_metric_history_bulk_interval", "GET"): READ,
    ("serve_get_trace_artifact", "GET"): READ,
    ("serve_get_logged_model_artifact", "GET"): READ,
    ("serve_search_datasets", "POST"): READ,
    ("_get_online_scoring_configs", "GET"): READ,
    ("_get_job", "GET"): READ,
    # Provider and model catalogues and whether secrets are configured; no
    # secret values.
    ("_list_supported_providers", "GET"): READ,
    ("_list_supported_models", "GET"): READ,
    ("_get_provider_config", "GET"): READ,
    ("_get_secrets_config", "GET"): READ,
    # The UI's telemetry settings and events change no MLflow data; any user
    # who may look at the UI may send them.
    ("serve_get_ui_telemetry", "GET"): READ,
    ("serve_post_ui_telemetry", "POST"): READ,
    # Writes: a run from the prompt lab, a small artifact upload, the demo
    # experiment, an online scoring config.
    ("serve_create_promptlab_run", "POST"): EDIT,
    ("serve_upload_artifact", "POST"): EDIT,
    ("_generate_demo", "POST"): EDIT,
    ("_upsert_online_scoring_config", "PUT"): EDIT,
    # Gateway traffic (contract §5: gateway-proxy and */invoke are EDIT).
    ("serve_gateway_proxy", "GET"): EDIT,
    ("serve_gateway_proxy", "POST"): EDIT,
    ("_invoke_scorer_handler", "POST"): EDIT,
    ("_invoke_issue_detection_handler", "POST"): EDIT,
    ("_invoke_genai_evaluate_handler", "POST"): EDIT,
    ("_cancel_job", "PATCH"): EDIT,
    # Hard-deletes the demo experiment and everything in it.
    ("_delete_demo", "POST"): MANAGE,
}

# --- FastAPI's native routes ----------------------------------------------------

# (module, view function, method) -> level.
NATIVE_VIEWS = {
    ("mlflow.server.server_info_api", "health", "GET"): PUBLIC,
    ("mlflow.server.server_info_api", "get_server_info", "GET"): PUBLIC,
    # OTLP trace export writes traces into an experiment.
    ("mlflow.server.otel_api", "export_traces", "POST"): EDIT,
    ("mlflow.server.artifact_router", "download_artifact", "GET"): READ,
    ("mlflow.server.artifact_router", "upload_artifact", "PUT"): EDIT,
    ("mlflow.server.job_api", "get_job", "GET"): READ,
    ("mlflow.server.job_api", "search_jobs", "POST"): READ,
    ("mlflow.server.job_api", "cancel_job", "PATCH"): EDIT,
    # Submits any registered job function with caller-chosen parameters.
    ("mlflow.server.job_api", "submit_job", "POST"): MANAGE,
    # The gateway: listing its models reads; every call through it spends the
    # provider keys MLflow holds, which is EDIT.
    ("mlflow.server.gateway_api", "list_models", "GET"): READ,
    ("mlflow.server.gateway_api", "invocations", "POST"): EDIT,
    ("mlflow.server.gateway_api", "chat_completions", "POST"): EDIT,
    ("mlflow.server.gateway_api", "openai_passthrough_chat", "POST"): EDIT,
    ("mlflow.server.gateway_api", "openai_passthrough_embeddings", "POST"): EDIT,
    ("mlflow.server.gateway_api", "openai_passthrough_responses", "POST"): EDIT,
    ("mlflow.server.gateway_api", "openai_passthrough_responses_compact", "POST"): EDIT,
    ("mlflow.server.gateway_api", "anthropic_passthrough_messages", "POST"): EDIT,
    ("mlflow.server.gateway_api", "typesafe_passthrough_system_one", "POST"): EDIT,
    ("mlflow.server.gateway_api", "gemini_passthrough_generate_content", "POST"): EDIT,
    ("mlflow.server.gateway_api", "gemini_passthrough_stream_generate_content", "POST"): EDIT,
    ("mlflow.server.gateway_api", "raw_proxy", "POST"): EDIT,
    # The MCP server registry, like the model registry: reads READ, creates,
    # updates, tags and aliases EDIT, deleting a server, a version or an
    # access endpoint MANAGE.
    ("mlflow.server.mcp_server_api", "search_mcp_servers", "GET"): READ,
    ("mlflow.server.mcp_server_api", "search_all_access_endpoints", "GET"): READ,
    ("mlflow.server.mcp_server_api", "get_mcp_server", "GET"): READ,
    ("mlflow.server.mcp_server_api", "get_mcp_server_version", "GET"): READ,
    ("mlflow.server.mcp_server_api", "search_mcp_server_versions", "GET"): READ,
    ("mlflow.server.mcp_server_api", "get_mcp_access_endpoint", "GET"): READ,
    ("mlflow.server.mcp_server_api", "search_server_access_endpoints", "GET"): READ,
    ("mlflow.server.mcp_server_api", "get_version_by_alias", "GET"): READ,
    ("mlflow.server.mcp_server_api", "create_mcp_server", "POST"): EDIT,
    ("mlflow.server.mcp_server_api", "update_mcp_server", "PATCH"): EDIT,
    ("mlflow.server.mcp_server_api", "create_mcp_server_version", "POST"): EDIT,
    ("mlflow.server.mcp_server_api", "update_mcp_server_version", "PATCH"): EDIT,
    ("mlflow.server.mcp_server_api", "create_mcp_access_endpoint", "POST"): EDIT,
    ("mlflow.server.mcp_server_api", "update_mcp_access_endpoint", "PATCH"): EDIT,
    ("mlflow.server.mcp_server_api", "set_mcp_server_tag", "POST"): EDIT,
    ("mlflow.server.mcp_server_api", "delete_mcp_server_tag", "DELETE"): EDIT,
    ("mlflow.server.mcp_server_api", "set_mcp_server_version_tag", "POST"): EDIT,
    ("mlflow.server.mcp_server_api", "delete_mcp_server_version_tag", "DELETE"): EDIT,
    ("mlflow.server.mcp_server_api", "set_mcp_server_alias", "POST"): EDIT,
    ("mlflow.server.mcp_server_api", "delete_mcp_server_alias", "DELETE"): EDIT,
    ("mlflow.server.mcp_server_api", "delete_mcp_server", "DELETE"): MANAGE,
    ("mlflow.server.mcp_server_api", "delete_mcp_server_version", "DELETE"): MANAGE,
    ("mlflow.server.mcp_server_api", "delete_mcp_access_endpoint", "DELETE"): MANAGE,
}

# Every route of these modules, whatever the method. The assistant runs an
# agent with a shell on the server host (contract §5).
NATIVE_MODULES = {"mlflow.server.assistant.api": MANAGE}

# GraphQL "mutations" MLflow ships: all of them read.
READ_ONLY_GRAPHQL = re.compile(r"^(mlflowSearch|mlflowGet|mlflowList)\w*$|^testMutation$")

STRICTNESS = {PUBLIC: 0, AUTHENTICATED: 1, READ: 2, EDIT: 3, MANAGE: 4}


def stricter(a: str, b: str) -> str:
    """The stricter of two levels."""
    return max(a, b, key=STRICTNESS.__getitem__)


def flask_view_level(view: str, method: str) -> str | None:
    """The level of a Flask view without an RPC, or None when undecided."""
    return FLASK_VIEWS.get((view, method))


def native_view_level(module: str, view: str, method: str) -> str | None:
    """The level of a native FastAPI route, or None when undecided."""
    return NATIVE_MODULES.get(module) or NATIVE_VIEWS.get((module, view, method))
