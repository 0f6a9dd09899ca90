from libs.runtime import run_service
from services.artifact_verifier.app import build

run_service(build)
