"""URLs of the operation interface."""

from django.contrib import admin
from django.urls import include, path

from spica.web import views

urlpatterns = [
    path("", views.status, name="status"),
    path("plots/<slug:name>.png", views.plot, name="plot"),
    path("pending/", views.pending, name="pending"),
    path("products/", views.products, name="products"),
    path("images/", views.images, name="images"),
    path("exposure/<int:expnum>/", views.exposure, name="exposure"),
    path("product/<str:release>/<str:stem>/", views.product, name="product"),
    path("grade/<int:expnum>/", views.grade, name="grade"),
    path("files/<path:relative>", views.files, name="files"),
    path("progress/", views.in_progress, name="progress"),
    path("skywatcher/", views.skywatcher, name="skywatcher"),
    path("skywatcher/map.<slug:fmt>", views.skywatcher_map, name="skywatcher_map"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]
