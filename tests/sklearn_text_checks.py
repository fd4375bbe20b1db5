"""scikit-learn's own API checks that apply to an estimator of text (its other checks feed numbers),
shared by the tests of the text estimators (TfIdf, CooccurrenceSVD)."""

from sklearn.utils import estimator_checks as ec

API_CHECKS = [ec.check_estimator_cloneable, ec.check_estimator_repr, ec.check_no_attributes_set_in_init,
              ec.check_get_params_invariance, ec.check_set_params, ec.check_parameters_default_constructible,
              ec.check_do_not_raise_errors_in_init_or_set_params, ec.check_mixin_order,
              ec.check_valid_tag_types, ec.check_estimator_tags_renamed]
