"""URL configuration: a single health-check endpoint (no admin)."""

from django.http import HttpRequest, JsonResponse
from django.urls import URLPattern, path


def health(request: HttpRequest) -> JsonResponse:
    """Liveness probe used by the load balancer."""
    return JsonResponse({"status": "ok"})


urlpatterns: list[URLPattern] = [
    path("health/", health, name="health"),
]
