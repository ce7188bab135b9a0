"""Model-run pages (workers/views.py), under /runs/."""

from __future__ import annotations

from django.urls import path

from workers import views

urlpatterns = [
    path("", views.run_list, name="run_list"),
    path("new/", views.run_new, name="run_new"),
    path("<int:run_id>/", views.run_detail, name="run_detail"),
    path("<int:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("<int:run_id>/resume/", views.run_resume, name="run_resume"),
]
