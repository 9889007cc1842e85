from django.db import migrations


def load(apps, schema_editor):
    # Ship the code set with the app: a fresh install can pick specialties at once.
    from registry.importing.taxonomy import SHIPPED_FILE, taxonomy_import

    taxonomy_import(path=SHIPPED_FILE, model=apps.get_model("registry", "Taxonomy"))


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
