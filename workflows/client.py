"""The one way every process connects to Temporal: `make_client(settings)` with the pydantic converter."""

from __future__ import annotations

from temporalio.client import Client, TLSConfig
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.contrib.pydantic import pydantic_data_converter

from registry.settings import Settings


class TemporalUnreachable(RuntimeError):
    """Temporal could not be reached at the configured address."""


def _tls(settings: Settings) -> TLSConfig | bool:
    if settings.temporal_tls_cert or settings.temporal_tls_ca:
        return TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes() if settings.temporal_tls_cert else None,
            client_private_key=settings.temporal_tls_key.read_bytes() if settings.temporal_tls_key else None,
            server_root_ca_cert=settings.temporal_tls_ca.read_bytes() if settings.temporal_tls_ca else None,
        )
    # Temporal Cloud with an API key always speaks TLS.
    return settings.temporal_api_key is not None


def worker_runtime(settings: Settings) -> Runtime | None:
    """A runtime exporting the SDK's worker metrics (task latencies, slots, polls) for Prometheus, if asked."""
    if not settings.worker_metrics_address:
        return None
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=settings.worker_metrics_address)))


async def make_client(settings: Settings, runtime: Runtime | None = None) -> Client:
    """Connect to the configured Temporal namespace, or raise `TemporalUnreachable` saying what to fix."""
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
            tls=_tls(settings),
            api_key=settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None,
            runtime=runtime,
        )
    except Exception as err:  # the SDK raises a bare RuntimeError for most connection failures
        raise TemporalUnreachable(
            f"cannot reach Temporal at {settings.temporal_address} (namespace {settings.temporal_namespace}): "
            f"{err}. Check CCR_TEMPORAL_ADDRESS, CCR_TEMPORAL_NAMESPACE and the TLS or API key settings."
        ) from err
