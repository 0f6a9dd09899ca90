from libs.runtime import run_service
from services.health_watcher.app import build

run_service(build)
