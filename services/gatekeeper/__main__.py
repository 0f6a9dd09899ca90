from libs.runtime import run_service
from services.gatekeeper.app import build

run_service(build)
