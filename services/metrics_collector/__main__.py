from libs.runtime import run_service
from services.metrics_collector.app import build

run_service(build)
