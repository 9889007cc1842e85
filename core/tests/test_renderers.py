import pytest
from django.forms.renderers import get_default_renderer
from django.urls import reverse

from core.renderers import WidgetRenderer
from partners.factories import ProviderFactory
from partners.widgets import ProviderPicker
from referrals.factories import ReferralFactory
from referrals.forms import ReferralFilter


def test_widgets_render_with_jinja2():
    renderer = get_default_renderer()
    assert isinstance(renderer, WidgetRenderer)
    template = renderer.get_template("django/forms/widgets/select.html")
    assert type(template).__module__ == "django.template.backends.jinja2"


@pytest.mark.django_db
def test_the_provider_picker_keeps_its_label_and_search_address():
    provider = ProviderFactory(first_name="Ada", last_name="Lovelace", credential="MD")
    html = ProviderPicker().render("provider", provider.pk, attrs={"id": "id_provider"})
    assert 'value="Ada Lovelace, MD"' in html
    assert f'hx-get="{reverse("partners:provider_typeahead")}"' in html
    assert 'name="provider_search"' in html


@pytest.mark.django_db
def test_a_filter_form_renders_choices_and_the_selected_one(rf, coordinator):
    request = rf.get("/referrals/")
    request.user = coordinator
    form = ReferralFilter({"urgency": "urgent"}, request=request).form
    html = str(form["urgency"])
    assert '<option value="urgent" selected>' in html
    assert "Any urgency" in html


@pytest.mark.django_db
def test_admin_widgets_without_a_jinja2_template_fall_back_to_django_templates(client):
    from core.factories import UserFactory
    from core.roles import Role

    client.force_login(UserFactory(role=Role.ADMINISTRATOR))
    referral = ReferralFactory()
    response = client.get(reverse("admin:referrals_referral_change", args=[referral.pk]))
    assert response.status_code == 200
    # The admin's related-object widget (a Django-only template) is on the page.
    assert "related-widget-wrapper" in response.content.decode()
