package charttest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/applyconfigurations"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

// validator checks objects as an API server with strict field validation would before
// storing them: the built-in kinds against the OpenAPI schema client-go embeds (the one
// server-side apply uses: unknown fields, wrong types and malformed quantities are
// errors), then by strict decoding into the k8s.io/api Go types (unknown and duplicate
// fields are errors); custom resources against their CRD (schema, unknown fields as the
// API server's pruning finds them, and the CRD's CEL rules). It does not run the API
// server's semantic validation (pkg/apis/core/validation); the tests check the rules that
// matter to the chart themselves.
type validator struct {
	types   managedfields.TypeConverter
	decoder runtime.Decoder
	crds    map[schema.GroupVersionKind]*crdSchema
}

// crdSchema is one version of a CRD, ready to validate objects of its kind.
type crdSchema struct {
	structural *structuralschema.Structural
	validator  apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

// crdFiles are the CRDs of the custom resources the chart makes (testdata; each file says
// where it comes from).
var crdFiles = []string{"keda.sh_scaledobjects.yaml", "monitoring.coreos.com_servicemonitors.yaml"}

var (
	theValidator  *validator
	validatorErr  error
	validatorOnce sync.Once
)

// newValidator builds the validator once: the embedded schema takes a second to parse.
func newValidator() (*validator, error) {
	validatorOnce.Do(func() {
		v := &validator{
			types:   applyconfigurations.NewTypeConverter(scheme.Scheme),
			decoder: serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer(),
			crds:    map[schema.GroupVersionKind]*crdSchema{},
		}
		for _, f := range crdFiles {
			if err := v.loadCRD(filepath.Join("testdata", f)); err != nil {
				validatorErr = err
			}
		}
		theValidator = v
	})
	return theValidator, validatorErr
}

// loadCRD reads a CustomResourceDefinition and prepares each of its served versions.
func (v *validator) loadCRD(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.UnmarshalStrict(b, &crd); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for _, ver := range crd.Spec.Versions {
		if !ver.Served || ver.Schema == nil || ver.Schema.OpenAPIV3Schema == nil {
			continue
		}
		var internal apiextensions.JSONSchemaProps
		if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(ver.Schema.OpenAPIV3Schema, &internal, nil); err != nil {
			return fmt.Errorf("%s %s: convert schema: %w", path, ver.Name, err)
		}
		structural, err := structuralschema.NewStructural(&internal)
		if err != nil {
			return fmt.Errorf("%s %s: structural schema: %w", path, ver.Name, err)
		}
		sv, _, err := apiservervalidation.NewSchemaValidator(&internal)
		if err != nil {
			return fmt.Errorf("%s %s: schema validator: %w", path, ver.Name, err)
		}
		gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: ver.Name, Kind: crd.Spec.Names.Kind}
		v.crds[gvk] = &crdSchema{
			structural: structural,
			validator:  sv,
			cel:        cel.NewValidator(structural, true, celPerCallLimit),
		}
	}
	if len(v.crds) == 0 {
		return fmt.Errorf("%s: no served version with a schema", path)
	}
	return nil
}

// The API server's own CEL budgets (apiextensions-apiserver's defaults).
const (
	celPerCallLimit   = 1000000
	celRuntimeBudget  = 10000000
	maxMetadataLength = 253
)

// validate checks one rendered object.
func (v *validator) validate(obj map[string]any) error {
	u := &unstructured.Unstructured{Object: obj}
	gvk := u.GroupVersionKind()
	if gvk.Kind == "" || gvk.Version == "" {
		return errors.New("no apiVersion or kind")
	}
	if crd, ok := v.crds[gvk]; ok {
		return crd.validate(obj)
	}
	if !scheme.Scheme.Recognizes(gvk) {
		return fmt.Errorf("%s is neither a built-in kind nor a CRD the test knows", gvk)
	}
	if _, err := v.types.ObjectToTyped(u); err != nil {
		return fmt.Errorf("%s: OpenAPI schema: %w", gvk.Kind, err)
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	if _, _, err := v.decoder.Decode(b, nil, nil); err != nil {
		return fmt.Errorf("%s: strict decoding: %w", gvk.Kind, err)
	}
	return nil
}

// validate checks a custom resource as the API server does on create with
// fieldValidation=Strict: metadata, the schema, fields the schema does not know (the
// server would prune them; strict validation refuses them), and the CEL rules.
func (c *crdSchema) validate(obj map[string]any) error {
	var errs field.ErrorList
	md, _ := obj["metadata"].(map[string]any)
	if name, _ := md["name"].(string); name == "" || len(name) > maxMetadataLength {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), md["name"], "must be 1 to 253 characters"))
	}
	errs = append(errs, apiservervalidation.ValidateCustomResource(nil, obj, c.validator)...)
	copied := runtime.DeepCopyJSON(obj)
	unknown := structuralpruning.PruneWithOptions(copied, c.structural, true, structuralschema.UnknownFieldPathOptions{TrackUnknownFieldPaths: true})
	for _, path := range unknown {
		errs = append(errs, field.Forbidden(field.NewPath(path), "field not declared in schema"))
	}
	celErrs, _ := c.cel.Validate(context.Background(), nil, c.structural, obj, nil, celRuntimeBudget)
	errs = append(errs, celErrs...)
	return errs.ToAggregate()
}
