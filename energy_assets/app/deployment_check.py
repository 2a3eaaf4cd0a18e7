"""`energy-assets check-deployment`: what a production process needs of GCS and Hopsworks, verified against the
real services with the settings and credentials of the process that runs it, each missing piece named with
its fix. The probes write only throw-away names (an object under `<prefix>/_check_deployment/`, a folder in
the Models dataset) and remove them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from energy_assets import settings
from energy_assets.schema import FEATURE_GROUP_NAME, MODEL_NAME
from energy_assets.storage.buckets import Bucket, GCSBucket, deployment_bucket, gcs_credentials

# What each process of the production topology does with the bucket (docs/production.md, "What a first real run needs").
PROCESS_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "webserver (reads step logs)": ("storage.objects.list", "storage.objects.get"),
    "daemon (loads the instance)": ("storage.objects.list",),
    "code server and run workers (write objects and step logs)": (
        "storage.objects.list", "storage.objects.get", "storage.objects.create", "storage.objects.delete",
    ),
    "energy-assets latest|gather": ("storage.objects.list", "storage.objects.get"),
}
# The API key scopes the run workers use, what for, and whether a run needs them.
API_KEY_SCOPES: dict[str, str] = {
    "PROJECT": "log in to the project",
    "FEATURESTORE": "the feature group and its view: inserts, reads, compaction",
    "MODELREGISTRY": "register, list and read models",
    "DATASET_VIEW": "see the Models dataset and download model files",
    "DATASET_CREATE": "upload model files to the Models dataset",
    "DATASET_DELETE": "remove a failed upload from the Models dataset",
    "JOB": f"materialize training datasets (only with {settings.TRAINING_DATASETS}=true)",
}


@dataclass(frozen=True)
class Finding:
    """One thing a deployment needs: whether it is there, and if not, what to do."""

    subject: str
    ok: bool
    detail: str = ""

    def __str__(self) -> str:
        return f"  {'ok' if self.ok else 'MISSING':8} {self.subject}" + (f": {self.detail}" if self.detail else "")


def check_deployment(report: Callable[[str], None]) -> list[Finding]:
    """Every check of the deployment `ENERGY_ASSETS_DEPLOYMENT` selects, reported line by line; the findings."""
    findings: list[Finding] = []

    def section(title: str, checks: list[Finding]) -> None:
        report(title)
        for finding in checks:
            report(str(finding))
        findings.extend(checks)

    bucket = deployment_bucket()
    section(
        f"bucket {bucket.uri('')} (the IO manager, serving files, compute logs) as {_identity(bucket)}",
        check_bucket(bucket, settings.bucket_prefix()),
    )
    if settings.deployment_name() == "prod":
        host = settings.text(settings.FS_HOST)
        section(
            f"Hopsworks project {settings.text(settings.FS_PROJECT_NAME)!r} at {host or 'the SDK default host'}",
            check_hopsworks(settings.text(settings.FS_API_KEY, ""), settings.text(settings.FS_PROJECT_NAME, ""), host),
        )
    return findings


def check_bucket(bucket: Bucket, prefix: str) -> list[Finding]:
    """Each object permission probed with a throw-away object, then what each process needs of them."""
    probe = f"{prefix}/_check_deployment/{uuid.uuid4().hex}"
    granted: dict[str, Finding] = {}

    def attempt(permission: str, action: Callable[[], Any], needs: str | None = None) -> None:
        if needs and not granted[needs].ok:
            granted[permission] = Finding(permission, False, f"not checked: probing it needs {needs}")
            return
        try:
            action()
        except PermissionError as error:
            granted[permission] = Finding(permission, False, str(error).split(" (docs/")[0])
        else:
            granted[permission] = Finding(permission, True)

    try:
        attempt("storage.objects.list", lambda: bucket.list_keys(f"{prefix}/_check_deployment/"))
    except (FileNotFoundError, ValueError) as error:  # a missing bucket or credentials file, a bad setting
        return [Finding("the bucket and its credentials", False, str(error))]
    attempt("storage.objects.get", lambda: _read_absent(bucket, probe))
    attempt("storage.objects.create", lambda: bucket.write_bytes(probe, b"first", create_only=True))
    # Replacing an object deletes the old one: every write of an hour that exists, every partial step-log upload.
    attempt("storage.objects.delete", lambda: bucket.write_bytes(probe, b"second"), needs="storage.objects.create")
    if granted["storage.objects.delete"].ok:
        bucket.delete(probe)
    findings = list(granted.values())
    for process, permissions in PROCESS_PERMISSIONS.items():
        missing = [permission for permission in permissions if not granted[permission].ok]
        findings.append(Finding(process, not missing, f"lacks {', '.join(missing)}" if missing else ", ".join(permissions)))
    return findings


def _identity(bucket: Bucket) -> str:
    """Whom GCS sees: the principal whose roles the checks probe."""
    if not isinstance(bucket, GCSBucket):
        return "this machine's user"
    try:
        credentials, _ = gcs_credentials(bucket.service_account_json_path, bucket.project)
    except (OSError, ValueError) as error:
        return f"nobody ({error})"
    if credentials is None:
        return f"anonymous ({settings.STORAGE_EMULATOR_HOST} is set)"
    email = getattr(credentials, "service_account_email", None)
    source = settings.GCS_SERVICE_ACCOUNT_JSON_PATH if bucket.service_account_json_path else "application default credentials"
    return f"{email} ({source})" if email else source


def _read_absent(bucket: Bucket, key: str) -> None:
    """Read an object that does not exist: allowed reads end in FileNotFoundError, forbidden ones in PermissionError
    naming storage.objects.get (telling the missing object from a missing bucket may need another permission)."""
    try:
        bucket.read_bytes(key)
    except FileNotFoundError:
        return
    except PermissionError as error:
        if "storage.objects.get" in str(error):
            raise


def check_hopsworks(api_key: str, project: str, host: str | None) -> list[Finding]:
    """Log in as the run workers do, then use each API key scope once (read-only, or on a throw-away folder)."""
    from hopsworks.client.exceptions import RestAPIError

    from energy_assets.resources.hopsworks import SAAS_HOST, HopsworksFeatureStore, HopsworksLoginError, group_differences

    store = HopsworksFeatureStore(
        api_key=api_key, project=project, host=host or SAAS_HOST, feature_group_version=settings.feature_group_version()
    )
    try:
        logged_in = store.project_handle()
    except HopsworksLoginError as error:
        return [Finding(f"login ({API_KEY_SCOPES['PROJECT']}; scope PROJECT)", False, str(error))]
    findings = [Finding("login (scope PROJECT)", True)]
    probe_folder = f"Models/energy_assets_check_{uuid.uuid4().hex[:12]}"

    def feature_group() -> str:
        group = logged_in.get_feature_store().get_feature_group(FEATURE_GROUP_NAME, version=store.feature_group_version)
        if group is None:
            return f"{FEATURE_GROUP_NAME} v{store.feature_group_version} is created by the first insert"
        differences = group_differences(group)
        if differences:
            raise ValueError(
                f"{FEATURE_GROUP_NAME} v{store.feature_group_version} exists but is not one energy_assets writes: "
                + "; ".join(differences) + f"; set {settings.FEATURE_GROUP_VERSION} to a new version"
            )
        return f"{FEATURE_GROUP_NAME} v{store.feature_group_version} exists and matches"

    def models_dataset() -> str:
        if not logged_in.get_dataset_api().exists("Models"):
            raise ValueError("the Models dataset does not exist: enable the project's Serving service")
        return "the Models dataset exists"

    probes: list[tuple[str, str, Callable[[], str | None]]] = [
        ("FEATURESTORE", "feature store", feature_group),
        ("MODELREGISTRY", "model registry", lambda: f"{len(logged_in.get_model_registry().get_models(MODEL_NAME))} version(s) of {MODEL_NAME}"),
        ("DATASET_VIEW", "datasets", models_dataset),
        ("DATASET_CREATE", "datasets", lambda: logged_in.get_dataset_api().mkdir(probe_folder) and None),
        ("DATASET_DELETE", "datasets", lambda: logged_in.get_dataset_api().remove(probe_folder)),
        ("JOB", "jobs", lambda: f"{len(logged_in.get_job_api().get_jobs())} job(s)"),
    ]
    for scope, what, probe in probes:
        subject = f"{what} (scope {scope}: {API_KEY_SCOPES[scope]})"
        if scope == "DATASET_DELETE" and not findings[-1].ok:
            findings.append(Finding(subject, False, "not checked: probing it needs DATASET_CREATE"))
            continue
        try:
            detail = probe()
        except RestAPIError as error:
            findings.append(Finding(subject, False, _rest_problem(error, scope)))
        except ValueError as error:
            findings.append(Finding(subject, False, str(error)))
        else:
            findings.append(Finding(subject, True, detail or ""))
    return findings


def _rest_problem(error: Any, scope: str) -> str:
    """A REST failure as what to do: a missing scope named, anything else as the backend said it."""
    try:
        body = error.response.json()
    except ValueError:
        body = {}
    if error.response.status_code == 403 and body.get("errorCode") == 320004:  # RESTCodes.ApiKeyErrorCode
        return f"the API key lacks the {scope} scope: create a key with it (Hopsworks: Account settings -> API keys)"
    return f"HTTP {error.response.status_code}: {body.get('usrMsg') or body.get('errorMsg') or error}"
