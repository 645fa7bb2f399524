from django.apps import AppConfig


class MedguardNotificationsConfig(AppConfig):
    name = "medguard_notifications"
    label = "medguard_notifications"
    verbose_name = "Notifications"
