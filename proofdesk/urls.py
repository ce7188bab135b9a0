from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path

from annotate.views import health, pages

urlpatterns = [
    path("", pages.campaign_list, name="campaign_list"),
    path("healthz", health.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("campaigns/<int:campaign_id>/", pages.campaign_detail, name="campaign_detail"),
    path(
        "campaigns/<int:campaign_id>/items/<int:item_id>/",
        pages.item_detail,
        name="item_detail",
    ),
    path("admin/", admin.site.urls),
]
