from __future__ import annotations

from django.urls import path

from exampleproject import views

urlpatterns = [
    path("health", views.health),
    path("me", views.me),
    path("admin", views.admin),
    path("items", views.Items.as_view()),
    path("items/new", views.NewItem.as_view()),
]
